"""Benchmarks of the service (`chatbot bench`): a subpackage of the CLI, not a top-level package, so
it is installed wherever `chatbot` is (an editable checkout or a wheel) without claiming the import
name `bench`; `chatbot bench` imports it only when run, so its extra (`.[bench]`) stays optional."""
