// Package proto holds the service's API definitions and the Go code generated from them.
// The generated code is checked in; regenerate it after editing a .proto file with `make generate`
// (needs protoc and the plugins that `make tools` installs).
package proto

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative --go_opt=Mgreeter/v1/greeter.proto={{module}}/proto/greeter/v1;greeterv1 --go-grpc_out=. --go-grpc_opt=paths=source_relative --go-grpc_opt=Mgreeter/v1/greeter.proto={{module}}/proto/greeter/v1;greeterv1 greeter/v1/greeter.proto
