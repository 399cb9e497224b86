"""Reading a transaction's answer as Azure Table Storage writes it (the claim's ETags come from it)."""

from __future__ import annotations

from shared.storage.table_batch import read_answers

CREATED = (
    "--changesetresponse_7c4f\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    "HTTP/1.1 201 Created\r\nDataServiceVersion: 3.0;\r\n"
    "Content-Type: application/json;odata=minimalmetadata;streaming=true;charset=utf-8\r\n"
    "Location: https://acct.table.core.windows.net/runs(PartitionKey='t',RowKey='{row}')\r\n"
    "ETag: W/\"datetime'2026-12-02T07%3A37%3A01.96{n}Z'\"\r\n\r\n"
    '{{"PartitionKey":"t","RowKey":"{row}","Body":"a line\\r\\nHTTP/1.1 409 Conflict\\r\\n"}}\r\n'
)


def _answer(parts: str) -> bytes:
    return ("--batchresponse_55e1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_7c4f\r\n\r\n"
            + parts + "--changesetresponse_7c4f--\r\n--batchresponse_55e1--\r\n").encode()


def test_each_created_row_gives_its_status_and_etag_in_order_even_if_a_body_quotes_a_status_line() -> None:
    answers = read_answers(_answer(CREATED.format(row="run|1", n=1) + CREATED.format(row="outbox|1", n=2)))
    assert answers == [(201, "W/\"datetime'2026-12-02T07%3A37%3A01.961Z'\""),
                       (201, "W/\"datetime'2026-12-02T07%3A37%3A01.962Z'\"")]


def test_a_refused_transaction_gives_the_one_failing_status() -> None:
    refused = ("--changesetresponse_7c4f\r\nContent-Type: application/http\r\n"
               "Content-Transfer-Encoding: binary\r\n\r\n"
               "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n\r\n"
               '{"odata.error":{"code":"EntityAlreadyExists","message":{"lang":"en-US",'
               '"value":"1:The specified entity already exists."}}}\r\n')
    assert read_answers(_answer(refused)) == [(409, "")]
