"""The test lab: everything that plays the world around the product so that it can be tested
and demonstrated on one machine. See README.md."""
