"""Write-then-rename: an output appears whole or not at all, and a failed write loses nothing."""

import pytest

from t2i_gcpo.files import atomic_path, replace_path, write_text_atomic


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path):
    target = write_text_atomic(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as partial:
        partial.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    write_text_atomic(target, "new")
    assert target.read_text() == "new"


def test_a_folder_is_replaced_whole(tmp_path):
    target = tmp_path / "policy"
    with atomic_path(target, folder=True) as staging:
        (staging / "w").write_text("1")
    with pytest.raises(ValueError), atomic_path(target, folder=True) as staging:
        (staging / "w").write_text("2")
        raise ValueError("crash while saving")
    assert (target / "w").read_text() == "1"
    with atomic_path(target, folder=True) as staging:
        (staging / "v").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["v"]  # the old folder is gone whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy"]
    source = tmp_path / "other"
    source.mkdir()
    replace_path(source, target)
    assert list(target.iterdir()) == [] and not source.exists()
    a_file = write_text_atomic(tmp_path / "f.txt", "x")
    with pytest.raises(ValueError, match="is a file"), atomic_path(a_file, folder=True):
        pass
