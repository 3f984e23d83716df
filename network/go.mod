module github.com/meshvpn/meshvpn/network

go 1.26.0
