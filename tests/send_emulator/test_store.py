from send_emulator import store


def test_lookups_by_a_field_use_an_index(tmp_path):
    data = store.Store(str(tmp_path / "plan.sqlite3"))
    data.create_account("test-api-key-1", "test-user-key-1")
    userdb_id = data.create_userdb(
        "test-api-key-1", "Plan", [("email", "STRING", True), ("notes", "TEXT", False)]
    )
    info = data.userdb(userdb_id)
    email = info.field("email").column
    modified = info.field("lastModified").column

    with data._read() as conn:
        by_email = conn.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM {info.table} WHERE {email} IS ?",  # noqa: S608
            ("a",),
        ).fetchall()
        by_time = conn.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM {info.table}"  # noqa: S608
            f" WHERE {modified} > ? ORDER BY {modified}, id",
            (0,),
        ).fetchall()

    assert "USING INDEX" in str(by_email)
    assert "USING INDEX" in str(by_time)
    assert "TEMP B-TREE" not in str(by_time)


def test_modification_times_strictly_increase(tmp_path):
    data = store.Store(str(tmp_path / "stamps.sqlite3"))
    data.create_account("test-api-key-1", "test-user-key-1")
    info = data.userdb(data.create_userdb("test-api-key-1", "Stamps", []))

    added = data.add(info, [{}] * 50)

    stamps = [str(record.attributes["lastModified"]) for record in added]
    assert stamps == sorted(set(stamps))
