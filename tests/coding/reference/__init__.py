"""The coders as they were before compilation (numpy + constriction): the test oracle."""
