"""Reads every Parquet file of a folder with pyarrow and with DuckDB and
prints rows and column types side by side; exits 1 if they differ.
`make demo` runs it on the pipeline's exports (data/*.parquet).

usage: python parquet_readback.py FOLDER
"""
import glob
import os
import sys

import duckdb
import pyarrow.parquet as pq

# DuckDB's type of a Parquet column as Arrow spells it.
ARROW = {
    "BIGINT": "int64", "INTEGER": "int32", "DOUBLE": "double", "FLOAT": "float", "VARCHAR": "string",
    "BOOLEAN": "bool", "DATE": "date32[day]", "TIMESTAMP": "timestamp[us]", "FLOAT[]": "list<element: float>",
}


def main(folder):
    files = sorted(glob.glob(os.path.join(folder, "*.parquet")))
    if not files:
        sys.exit(f"no .parquet files in {folder}")
    con = duckdb.connect()
    bad = 0
    print(f"{'file':<28} {'pyarrow rows':>12} {'DuckDB rows':>12}  types")
    for path in files:
        table = pq.read_table(path)
        rows = con.execute("SELECT count(*) FROM read_parquet(?)", [path]).fetchone()[0]
        duck = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [path]).fetchall()
        arrow = [str(f.type).replace("item:", "element:") for f in table.schema]
        same = rows == table.num_rows and [ARROW.get(t[1], t[1]) for t in duck] == arrow
        bad += not same
        print(f"{os.path.basename(path):<28} {table.num_rows:>12,} {rows:>12,}  {'same' if same else 'DIFFERENT'}: {', '.join(arrow)}")
    if bad:
        sys.exit(f"{bad} file(s) read differently")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
