"""Records, validation, canonical encoding, content IDs and signatures."""
