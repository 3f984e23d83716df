module github.com/meshvpn/meshvpn/exit

go 1.26.0

replace github.com/meshvpn/meshvpn/core => ../core

replace github.com/meshvpn/meshvpn/network => ../network

replace github.com/meshvpn/meshvpn/crypto => ../crypto
