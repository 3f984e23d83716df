module github.com/meshvpn/meshvpn/payment

go 1.26.0
