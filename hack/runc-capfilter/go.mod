module workerlab.dev/hack/runc-capfilter

go 1.24.0
