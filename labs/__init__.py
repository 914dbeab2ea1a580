"""The course: lab texts, their checkers and the `workerlab` command line."""
