"""Request bodies for the HTTP app: reading one within a size limit, and CSV in and out.

`read_body` streams a body without a declared length and stops at the limit (the
app's guard has already checked a declared one); `csv_bytes` takes a CSV from a
raw body or a multipart upload; `csv_rows` parses it with the model's schema into
the rows the JSON endpoint takes; `outputs_csv` writes predictions back as CSV.
"""


class TooLarge(Exception):
    pass


async def read_body(request, limit: int) -> bytes:
    if request.headers.get("content-length") is not None:
        return await request.body()  # the guard already checked the declared length
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class BadCsv(Exception):
    pass


async def csv_bytes(request, limit: int) -> bytes:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=10)
        except Exception as exc:
            raise BadCsv(f"could not read the upload: {exc}") from None
        upload = form.get("file")
        if upload is None:
            raise BadCsv("the upload needs a field named 'file' holding the CSV")
        # a file part, or the CSV text as a plain form field (curl -F 'file=<rows.csv' sends it so)
        data = upload.encode() if isinstance(upload, str) else await upload.read()
        if len(data) > limit:
            raise TooLarge
        return data
    return await read_body(request, limit)


def csv_rows(data: bytes, served) -> list[dict]:
    import io

    import pandas as pd

    from trainyard.data.load import NA_VALUES

    if not data.strip():
        raise BadCsv("the CSV body is empty: send a header row and at least one data row")
    text_roles = ("categorical", "text", "boolean", "datetime")
    dtypes = {c.name: str for c in served.model.schema.columns if c.role in text_roles or c.role in ("id", "ignore", "target")}
    try:
        df = pd.read_csv(io.BytesIO(data), dtype=dtypes, na_values=NA_VALUES, keep_default_na=True, skipinitialspace=True)
    except Exception as exc:  # any parser failure is the client's body, never a server error
        raise BadCsv(f"the body is not readable CSV ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})") from None
    if df.shape[1] == 0 or len(df) == 0:
        raise BadCsv("the CSV has no data rows: send a header row and at least one data row")
    df.columns = [str(c).strip() for c in df.columns]
    if df.columns.duplicated().any():
        raise BadCsv("the CSV header names a column more than once")
    records = df.astype(object).where(df.notna(), None).to_dict("records")
    optional = set(served.validator.optional) | set(served.validator.ignored)
    # An empty cell in an optional column means "missing": drop the key so the row reads as absent there.
    return [{k: v for k, v in r.items() if not (v is None and k in optional)} for r in records]


def outputs_csv(ids: list[str], outputs: list[dict], served) -> str:
    import csv
    import io

    buf = io.StringIO()
    classes = served.classes
    header = ["id", "prediction"] + ([f"proba_{c}" for c in classes] if classes is not None else [])
    w = csv.writer(buf)
    w.writerow(header)
    for i, o in zip(ids, outputs):
        w.writerow([i, o["prediction"], *(o["probabilities"].values() if classes is not None else [])])
    return buf.getvalue()
