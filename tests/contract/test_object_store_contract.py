"""ONE contract, every object store: local folder, GCS (fake-gcs-server), memory."""

from __future__ import annotations

import pytest

from pipeline.errors import ImageRejected, SourceNotAllowed, SourceNotFound
from pipeline.objects import ObjectStore, open_object_store
from tests.conftest import new_bucket


@pytest.fixture(params=["file", "gs", "memory"])
def store(request, tmp_path) -> ObjectStore:
    if request.param == "file":
        url = f"file://{tmp_path}/objects"
    elif request.param == "gs":
        request.getfixturevalue("fake_gcs")
        url = f"gs://{new_bucket()}/lake"
    else:
        url = f"memory://{tmp_path.name}"
    opened = open_object_store(url)
    yield opened
    opened.close()


KEY = "outputs/dt=2026-11-27/job-1/thumb.webp"


def test_put_then_get_and_exists(store):
    uri = store.put(KEY, b"RIFF....WEBP", "image/webp")
    assert uri == store.uri_for(KEY)
    assert store.owns(uri) and store.exists(uri)
    assert store.get(uri, 1024) == b"RIFF....WEBP"
    assert "dt=2026-11-27/job-1/thumb.webp" in uri


def test_overwrite_in_place_never_duplicates(store):
    first = store.put(KEY, b"one", "image/webp")
    second = store.put(KEY, b"two", "image/webp")
    assert first == second and store.get(second, 10) == b"two"


def test_missing_object(store):
    uri = store.uri_for("sources/nobody/here.jpg")
    assert not store.exists(uri)
    with pytest.raises(SourceNotFound):
        store.get(uri, 10)


def test_size_limit_is_checked_before_reading(store):
    uri = store.put("sources/big/src", b"x" * 5000, "application/octet-stream")
    with pytest.raises(ImageRejected) as info:
        store.get(uri, 4999)
    assert info.value.code == "source_too_large"
    assert len(store.get(uri, 5000)) == 5000


@pytest.mark.parametrize("key", ["../escape", "/abs/path", "a/../../b", "a//b", "", "a/./b"])
def test_keys_cannot_escape(store, key):
    with pytest.raises(SourceNotAllowed):
        store.put(key, b"x", "text/plain")


def test_foreign_and_traversing_uris_are_not_owned(store):
    inside = store.uri_for("sources/a/b.jpg")
    assert store.owns(inside)
    for uri in ["http://127.0.0.1/x.jpg", "gs://other-bucket/x", "file:///etc/passwd",
                inside.replace("sources/a/b.jpg", "../../etc/passwd")]:
        assert not store.owns(uri), uri


def test_put_new_file_refuses_to_clobber(store, tmp_path):
    path = tmp_path / "src.jpg"
    path.write_bytes(b"\xff\xd8original")
    uri = store.put_new_file("sources/j/source.jpg", path, "image/jpeg")
    assert store.put_new_file("sources/j/source.jpg", path, "image/jpeg") == uri  # same bytes
    path.write_bytes(b"\xff\xd8different")
    with pytest.raises(SourceNotAllowed) as info:
        store.put_new_file("sources/j/source.jpg", path, "image/jpeg")
    assert info.value.code == "source_exists"
    assert store.get(uri, 100) == b"\xff\xd8original"


def test_large_object_round_trip(store):
    data = bytes(range(256)) * (40 * 1024)  # 10 MiB: chunked/resumable on GCS
    uri = store.put("outputs/big.bin", data, "application/octet-stream")
    assert store.get(uri, len(data)) == data


def test_list_keys_under_a_prefix_and_delete(store):
    for key in ("lake/a/dt=1/x.parquet", "lake/a/dt=2/y.parquet", "lake/b/z.parquet",
                "lakeside/w.bin"):
        store.put(key, b"1", "application/octet-stream")
    assert store.list_keys("lake/a") == ["lake/a/dt=1/x.parquet", "lake/a/dt=2/y.parquet"]
    assert store.list_keys("lake/") == ["lake/a/dt=1/x.parquet", "lake/a/dt=2/y.parquet",
                                        "lake/b/z.parquet"]  # not lakeside/
    assert store.list_keys("nothing/here") == []
    assert store.delete("lake/a/dt=1/x.parquet") is True
    assert store.delete("lake/a/dt=1/x.parquet") is False
    assert store.list_keys("lake/a") == ["lake/a/dt=2/y.parquet"]
    with pytest.raises(SourceNotAllowed):
        store.list_keys("../etc")


def test_a_missing_bucket_is_named_not_reported_as_a_missing_object(fake_gcs, tmp_path):
    from pipeline.errors import StorageUnavailable

    store = open_object_store("gs://no-such-bucket-here/x")
    source = tmp_path / "s.jpg"
    source.write_bytes(b"jpeg")
    try:
        for write in (lambda: store.put(KEY, b"x", "image/webp"),
                      lambda: store.put_new_file(KEY, source, "image/jpeg")):
            with pytest.raises(StorageUnavailable) as failed:
                write()
            assert failed.value.code == "bucket_not_found"
            assert "gs://no-such-bucket-here does not exist" in failed.value.message
    finally:
        store.close()
