module github.com/meshvpn/meshvpn/crypto

go 1.26.0
