"""Operations: state hashes, backup, restore, archival, DR drills."""
