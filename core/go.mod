module github.com/meshvpn/meshvpn/core

go 1.26.0
