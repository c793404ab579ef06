"""Local fake payment providers that speak each provider's documented API and sign their
callbacks exactly as the provider documents. Used by the tests, the benchmarks and the demo
(payments work offline); never in production."""
