module github.com/meshvpn/meshvpn/cmd

go 1.26.0
