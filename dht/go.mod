module github.com/meshvpn/meshvpn/dht

go 1.26.0
