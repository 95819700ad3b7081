"""What the tests share: helpers, constants and request bodies, never a test. Test modules import from
here only (never from one another), so a helper has one home and a test module can move alone."""
