"""Process-level tooling: the development launcher and the embedded infrastructure it starts."""
