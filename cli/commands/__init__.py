"""One module per `workerlab` command group; each only parses options, calls a tool, renders."""
