module github.com/meshvpn/meshvpn/exit

go 1.26.0
