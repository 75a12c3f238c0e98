"""JSON Schema (draft 2020-12, 2019-09, 7), pydantic models and Python types → :class:`Grammar`.

Data path: :mod:`.resolve` (documents, locations, ``$ref``) → :mod:`.normalize` (keywords →
the normal forms of :mod:`.algebra`) → :mod:`.lower` (normal forms → grammar rules), with
:mod:`.numbers`, :mod:`.strings`, :mod:`.formats` and :mod:`.ecma` building the byte DFAs of
number literals, string values, formats and ``pattern`` regexes.
"""

from constrain.jsonschema.compiler import compile_json_schema, from_pydantic, from_type

__all__ = ["compile_json_schema", "from_pydantic", "from_type"]
