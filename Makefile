# chefd: the two quick-start commands are `make demo` and `make test`.
.PHONY: demo test build bench

demo:
	scripts/demo.sh

test:
	scripts/test.sh

build:
	go build -o bin/chefd ./cmd/chefd

bench:
	scripts/bench.sh
