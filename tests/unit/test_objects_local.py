import os

import pytest

from pipeline.errors import ImageRejected, SourceNotAllowed, SourceNotFound
from pipeline.objects import LocalObjectStore, local, open_object_store
from pipeline.objects.local import path_from_file_uri


@pytest.fixture(params=["proc-fd", "realpath"])
def store(request, tmp_path, monkeypatch):
    """Every test runs with both ways a read finds where its path really leads: the
    descriptor's /proc/self/fd link (Linux) and realpath (elsewhere)."""
    if request.param == "realpath":
        monkeypatch.setattr(local, "_PROC_FD", False)
    else:
        assert local._PROC_FD, "this Linux machine should have /proc/self/fd"
    return open_object_store(f"file://{tmp_path / 'objects'}")


def test_put_get_overwrite(store):
    uri = store.put("outputs/dt=2026-01-01/j1/thumb.webp", b"one", "image/webp")
    assert "dt=2026-01-01" in uri and store.exists(uri)
    assert store.put("outputs/dt=2026-01-01/j1/thumb.webp", b"two", "image/webp") == uri
    assert store.get(uri, 100) == b"two"
    folder = path_from_file_uri(uri).parent
    assert os.listdir(folder) == ["thumb.webp"]  # no temp files left behind


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a/../../b", "a//b", "a\\b", "",
                                 "a/./b", "a/b c"])
def test_keys_cannot_escape(store, key):
    with pytest.raises(SourceNotAllowed):
        store.put(key, b"x", "text/plain")


def test_reads_are_confined_to_the_root(store, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    assert not store.owns(secret.as_uri())
    with pytest.raises(SourceNotAllowed):
        store.get(f"file://{store.root}/../secret.txt", 100)
    link = store.root / "link"
    store.root.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    with pytest.raises(SourceNotAllowed):
        store.get(f"file://{link}", 100)


def test_a_symlinked_folder_leading_out_of_the_root_is_refused(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"no")
    store.root.mkdir(parents=True, exist_ok=True)
    (store.root / "sources").symlink_to(outside, target_is_directory=True)
    uri = f"file://{store.root}/sources/secret.jpg"
    assert store.claims(uri)  # lexically inside
    with pytest.raises(SourceNotAllowed) as info:
        store.get(uri, 100)
    assert info.value.code == "path_outside_root"


def test_a_name_outside_the_root_does_not_learn_whether_its_file_exists(store, tmp_path):
    (tmp_path / "exists.txt").write_text("no")
    store.root.mkdir(parents=True, exist_ok=True)
    for name in ("exists.txt", "missing.txt"):
        with pytest.raises(SourceNotAllowed) as info:
            store.get(f"file://{store.root}/../{name}", 100)
        assert info.value.code == "path_outside_root"


def test_symlinks_that_stay_inside_the_root_are_read(store):
    uri = store.put("sources/real.jpg", b"pixels", "image/jpeg")
    (store.root / "alias.jpg").symlink_to(store.root / "sources" / "real.jpg")
    (store.root / "folder-alias").symlink_to(store.root / "sources")
    assert store.get(f"file://{store.root}/alias.jpg", 100) == b"pixels"
    assert store.get(f"file://{store.root}/folder-alias/real.jpg", 100) == b"pixels"
    assert store.get(uri, 100) == b"pixels"


def test_a_symlink_to_a_device_is_refused_without_reading_it(store):
    store.root.mkdir(parents=True, exist_ok=True)
    (store.root / "zero.jpg").symlink_to("/dev/zero")
    with pytest.raises(SourceNotAllowed):
        store.get(f"file://{store.root}/zero.jpg", 100)


def test_a_nul_byte_in_a_source_name_is_refused_as_a_bad_source(store):
    store.put("sources/a.jpg", b"x", "image/jpeg")
    for uri in (f"file://{store.root}/sources/a.jpg%00.png", "file:///%00"):
        assert not store.claims(uri)
        with pytest.raises(SourceNotAllowed) as info:
            store.get(uri, 100)
        assert info.value.code == "bad_source"


def test_a_folder_is_not_an_object(store):
    store.put("sources/a/b.jpg", b"x", "image/jpeg")
    with pytest.raises(SourceNotAllowed) as info:
        store.get(store.uri_for("sources/a"), 100)
    assert info.value.code == "not_a_regular_file"


def test_a_device_node_inside_the_root_is_never_opened(tmp_path, monkeypatch):
    """The /proc/self/fd path checks the file type on a handle that opened nothing, so a
    device inside the root is refused before any open() of it."""
    store = LocalObjectStore(tmp_path)
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    opened = []
    real_open = os.open

    def recording_open(path, flags, *args, **kwargs):
        opened.append((str(path), flags))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    with pytest.raises(SourceNotAllowed) as info:
        store.get(store.uri_for("pipe.jpg"), 100)
    assert info.value.code == "not_a_regular_file"
    assert opened and all(flags & os.O_PATH for _, flags in opened)


def test_size_limit_and_missing(store):
    uri = store.put("sources/big", b"x" * 1000, "application/octet-stream")
    with pytest.raises(ImageRejected) as info:
        store.get(uri, 999)
    assert info.value.code == "source_too_large"
    with pytest.raises(SourceNotFound):
        store.get(store.uri_for("sources/none"), 10)


class _StaleStat:
    """os.fstat as seen just before another writer appended to the file (a race this
    test cannot time for real)."""

    def __init__(self, smaller_by: int) -> None:
        self.smaller_by, self.real = smaller_by, os.fstat

    def __call__(self, fd: int) -> os.stat_result:
        real = self.real(fd)
        fields = list(real)
        fields[6] = real.st_size - self.smaller_by  # st_size
        return os.stat_result(fields)


@pytest.mark.parametrize("limit, grown_ok", [(1100, True), (1000, False)])
def test_a_source_that_grows_while_read_is_read_to_the_limit(store, monkeypatch, limit,
                                                             grown_ok):
    uri = store.put("sources/growing", b"y" * 1050, "application/octet-stream")
    monkeypatch.setattr(os, "fstat", _StaleStat(100))  # stat saw 950 bytes
    if grown_ok:
        assert store.get(uri, limit) == b"y" * 1050  # all of it, not the 951 first
    else:
        with pytest.raises(ImageRejected) as info:
            store.get(uri, limit)
        assert info.value.code == "source_too_large"


def test_relative_root_resolves_against_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = LocalObjectStore.from_url("file://./var/objects")
    assert store.root == tmp_path / "var" / "objects"


def test_claims_is_lexical_and_reads_still_resolve_symlinks(store, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    store.root.mkdir(parents=True, exist_ok=True)
    link = store.root / "inside-looking"
    link.symlink_to(secret)
    assert not store.claims(f"file://{store.root}/../secret.txt")
    assert not store.claims(secret.as_uri())
    # Admission accepts the in-root name without touching the disk ...
    assert store.claims(f"file://{link}")
    # ... and the read, which resolves the link, refuses it.
    assert not store.owns(f"file://{link}")
    with pytest.raises(SourceNotAllowed):
        store.get(f"file://{link}", 100)


def test_put_recreates_a_folder_removed_after_an_earlier_put(store):
    import shutil

    store.put("outputs/dt=2026-01-01/a/x.png", b"1", "image/png")
    shutil.rmtree(store.root / "outputs")  # e.g. lake prune / an operator
    uri = store.put("outputs/dt=2026-01-01/a/y.png", b"2", "image/png")
    assert store.get(uri, 10) == b"2"
    assert [p.name for p in (store.root / "outputs/dt=2026-01-01/a").iterdir()] == ["y.png"]


def test_the_folders_a_store_remembers_are_bounded(store, monkeypatch):
    # every job writes into its own folder: a set of all of them grew with every job
    monkeypatch.setattr(local, "MADE_DIRS_REMEMBERED", 8)
    uris = [store.put(f"outputs/dt=2026-01-01/job{i}/a.png", b"%d" % i, "image/png")
            for i in range(30)]
    assert 0 < len(store._made_dirs) <= 8
    again = store.put("outputs/dt=2026-01-01/job0/b.png", b"b", "image/png")  # forgotten
    assert [store.get(u, 10) for u in uris] == [b"%d" % i for i in range(30)]
    assert store.get(again, 10) == b"b"


def test_a_crashed_writes_temp_file_is_removed_and_a_live_one_kept(store, tmp_path):
    import time

    store.put("jobs/a/out.png", b"done", "image/png")
    folder = store.root / "jobs" / "a"
    crashed = folder / ".tmp-out2.png-4242-1"  # a worker died between write and rename
    live = folder / ".tmp-out3.png-4243-1"  # a write in progress
    crashed.write_bytes(b"half")
    live.write_bytes(b"half")
    hour_ago = time.time() - 3600
    os.utime(crashed, (hour_ago, hour_ago))
    outside = tmp_path / "elsewhere.tmp"
    outside.write_bytes(b"x")
    (folder / ".tmp-link").symlink_to(outside)  # never followed, never ours to judge
    os.utime(folder / ".tmp-link", (hour_ago, hour_ago), follow_symlinks=False)
    assert store.remove_stale_temp(max_age=900) == 1
    assert not crashed.exists() and live.exists() and outside.exists()
    assert store.get(store.uri_for("jobs/a/out.png"), 10) == b"done"
    assert store.list_keys("jobs/") == ["jobs/a/out.png"]
