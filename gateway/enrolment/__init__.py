"""Enrolments as stored objects: versions in the database, examples and features in the
content-addressed store, the set a scene matches against on a camera (site-wide, camera override)."""
