"""The course: one folder per lab (its text, its checker, its exercise), found by `course`."""
