//! Nothing to build: this package only names the sources to fetch.
