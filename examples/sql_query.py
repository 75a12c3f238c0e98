"""Text to SQL, constrained by ``grammars/sql.lark`` (a SELECT subset with joins, WHERE,
GROUP BY, ORDER BY, LIMIT).

    python examples/sql_query.py

Whatever the model writes is a query that Lark's own LALR parser accepts for that grammar;
the example parses it again to show the tree's top.
"""

from __future__ import annotations

from pathlib import Path

import constrain

GRAMMAR = Path(__file__).resolve().parents[1] / "grammars" / "sql.lark"

QUESTION = """Tables: users(id, name, city, age), orders(id, user_id, total).
Write one SQL query: the names of users from Lisbon older than 30, ordered by name."""


def run(model, tok):
    from constrain.grammar import from_lark

    grammar = from_lark(GRAMMAR)
    return constrain.generate(model, tok, QUESTION, grammar=grammar, max_new_tokens=60,
                              instruction="Answer with the SQL query only.")


def lark_parse(text: str):
    from lark import Lark

    return Lark(GRAMMAR.read_text(), start="start", parser="lalr", lexer="basic").parse(text)


def main() -> None:
    from constrain import models

    model, tok = models.load_default()
    r = run(model, tok)
    print(r.text)
    print(f"-> {r.finish_reason}; Lark parses it: {lark_parse(r.text).data}" if r.complete else f"-> {r.finish_reason}")


if __name__ == "__main__":
    main()
