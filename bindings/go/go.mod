module github.com/panns/panns/bindings/go

go 1.22
