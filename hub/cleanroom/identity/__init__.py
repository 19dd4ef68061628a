"""Who a person is: second factors, log-in throttling, TLS, external identity providers,
and the identity policy (``policies/identity.yaml``)."""
