"""Markers for the serving-engine tests (registered here so pyproject stays untouched)."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "vllm: runs a real vLLM engine (needs the vllm virtualenv; minutes on CPU). "
        "Run: .ci/vllm-tests (builds .venv-vllm and runs pytest tests/integrations -m vllm)",
    )
