"""The shared alpha_drop is checked after every test that reads it (conftest.tree_state), and a
test that must change it works on a private copy (conftest.private_copy): both checked here."""

from __future__ import annotations

import os

from conftest import private_copy, tree_state


def _tree(root):
    (root / "compose").mkdir(parents=True)
    (root / "compose" / "STATUS").write_text("FINISHED\n")
    with open(root / "compose" / "disk.raw", "wb") as fh:
        fh.truncate(64 << 20)
        fh.write(b"data")
    os.symlink("compose", root / "latest")
    return root


def test_any_change_to_the_tree_is_seen(tmp_path):
    root = _tree(tmp_path / "drop")
    before = tree_state(root)
    assert tree_state(root) == before
    changes = [
        lambda: (root / "compose" / "STATUS").write_text("FINISHED\n"),  # same bytes, new mtime
        lambda: (root / "compose" / "new.log").write_text(""),
        lambda: (root / "compose" / "STATUS").chmod(0o600),
        lambda: (os.unlink(root / "latest"), os.symlink("elsewhere", root / "latest")),
    ]
    for change in changes:  # non-empty: the literal list above
        st = (root / "compose" / "STATUS").stat()
        os.utime(root / "compose" / "STATUS", ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))
        before = tree_state(root)
        change()
        assert tree_state(root) != before


def test_a_private_copy_keeps_holes_times_and_links(tmp_path):
    root = _tree(tmp_path / "drop")
    copy = private_copy(root, tmp_path / "copy")
    assert tree_state(copy) == tree_state(root)
    assert (copy / "compose" / "disk.raw").stat().st_blocks * 512 < 1 << 20  # still sparse
    (copy / "compose" / "STATUS").write_text("DOOMED\n")
    assert (root / "compose" / "STATUS").read_text() == "FINISHED\n"
