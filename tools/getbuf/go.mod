module github.com/haproxycheck/protoc-gen-haproxycheck/tools/getbuf

go 1.26.8
