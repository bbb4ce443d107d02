from core.ids import new_id


def test_ids_are_prefixed_opaque_and_increasing():
    ids = [new_id("evt") for _ in range(5000)]
    assert all(i.startswith("evt_") and len(i) == 4 + 24 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
