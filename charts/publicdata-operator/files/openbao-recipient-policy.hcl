# The policy a recipient of approved exports reads its deliveries with,
# written by the bureau when it admits the recipient (the operator writes
# none): files/openbao-setup.sh recipient CREDIT_CODE renders @CREDIT_CODE@
# and writes it as recipient-<credit code, lower case>.
path "deliveries/data/@CREDIT_CODE@/*" {
  capabilities = ["read"]
}
