// Command whoami is the mesh test kit's gRPC service and client (see e2e/support/README.md).
//
//	whoami serve                      answers devloop.e2e.Whoami/Who with the pod's name (POD_NAME, else the host name)
//	whoami call <target> [next...]    calls <target> and prints the answer; each `next` target is called by the
//	                                  previous hop, so `call A B` prints "podA > podB"
//	whoami greet <target> [name]      calls greeter.v1.GreeterService/SayHello (the go-grpc template's API) and
//	                                  prints {"servedBy": <x-served-by header>, "message": …, "route": …} as JSON
//
// Targets with the xds:/// scheme resolve through the xDS server named in GRPC_XDS_BOOTSTRAP (or the inline
// GRPC_XDS_BOOTSTRAP_CONFIG): Istio's proxyless gRPC. Other targets use plain DNS. The routing key travels as the
// W3C baggage member `devloop-route=<key>` and the `x-devloop-route` header, and every hop forwards both.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/wrapperspb"

	_ "google.golang.org/grpc/xds" // registers the xds:/// resolver and balancers
)

const (
	method      = "/devloop.e2e.Whoami/Who"
	routeHeader = "x-devloop-route"
	baggage     = "baggage"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: whoami serve | call [-route KEY] [-timeout D] <target> [next targets...]")
	}
	switch os.Args[1] {
	case "serve":
		serve()
	case "call", "greet":
		fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
		route := fs.String("route", "", "routing key (sent as baggage devloop-route=KEY and x-devloop-route)")
		timeout := fs.Duration("timeout", 10*time.Second, "deadline of the call")
		_ = fs.Parse(os.Args[2:])
		if fs.NArg() < 1 {
			log.Fatal("call: a target is required")
		}
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		if *route != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, baggage, "devloop-route="+*route, routeHeader, *route)
		}
		if os.Args[1] == "greet" {
			out, err := greet(ctx, fs.Arg(0), fs.Arg(1))
			if err != nil {
				log.Fatalf("greet %s: %v", fs.Arg(0), err)
			}
			fmt.Println(out)
			return
		}
		answer, err := call(ctx, fs.Arg(0), fs.Args()[1:])
		if err != nil {
			log.Fatalf("call %s: %v", fs.Arg(0), err)
		}
		fmt.Println(answer)
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}

func podName() string {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name
	}
	name, _ := os.Hostname()
	return name
}

// call asks target who it is; the request names the hops after it.
func call(ctx context.Context, target string, next []string) (string, error) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, method, wrapperspb.String(strings.Join(next, " ")), out, grpc.WaitForReady(true)); err != nil {
		return "", err
	}
	return out.GetValue(), nil
}

type whoamiServer interface{}

func serve() {
	port := os.Getenv("GRPC_PORT")
	if port == "" {
		port = "8080"
	}
	lis, err := net.Listen("tcp", ":"+port)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "devloop.e2e.Whoami",
		HandlerType: (*whoamiServer)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Who",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.StringValue)
				if err := dec(in); err != nil {
					return nil, err
				}
				return who(ctx, in.GetValue())
			},
		}},
	}, struct{}{})
	log.Printf("whoami %s serving on :%s (xDS client: %v)", podName(), port, xdsConfigured())
	log.Fatal(srv.Serve(lis))
}

// who answers with this pod's name and, when the request names further hops, theirs, forwarding the routing key.
func who(ctx context.Context, rest string) (*wrapperspb.StringValue, error) {
	me := podName()
	hops := strings.Fields(rest)
	if len(hops) == 0 {
		return wrapperspb.String(me), nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for _, key := range []string{baggage, routeHeader} {
		if v := md.Get(key); len(v) > 0 {
			out.Set(key, strings.Join(v, ","))
		}
	}
	ctx = metadata.NewOutgoingContext(ctx, out)
	answer, err := call(ctx, hops[0], hops[1:])
	if err != nil {
		return nil, fmt.Errorf("%s: calling %s: %w", me, hops[0], err)
	}
	return wrapperspb.String(me + " > " + answer), nil
}

func xdsConfigured() bool {
	return os.Getenv("GRPC_XDS_BOOTSTRAP") != "" || os.Getenv("GRPC_XDS_BOOTSTRAP_CONFIG") != ""
}

// rawCodec passes protobuf wire bytes through, so greet needs no generated code for the template's API.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// greet calls the go-grpc template's SayHello (request field 1 name; response fields 1 message, 2 route).
func greet(ctx context.Context, target, name string) (string, error) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	req := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), name)
	var resp []byte
	var header metadata.MD
	if err := conn.Invoke(ctx, "/greeter.v1.GreeterService/SayHello", &req, &resp, grpc.ForceCodec(rawCodec{}), grpc.Header(&header), grpc.WaitForReady(true)); err != nil {
		return "", err
	}
	out := map[string]string{"servedBy": strings.Join(header.Get("x-served-by"), ",")}
	for len(resp) > 0 {
		num, typ, n := protowire.ConsumeTag(resp)
		if n < 0 {
			return "", protowire.ParseError(n)
		}
		resp = resp[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, resp)
		} else {
			var v string
			v, n = protowire.ConsumeString(resp)
			switch num {
			case 1:
				out["message"] = v
			case 2:
				out["route"] = v
			}
		}
		if n < 0 {
			return "", protowire.ParseError(n)
		}
		resp = resp[n:]
	}
	b, err := json.Marshal(out)
	return string(b), err
}
