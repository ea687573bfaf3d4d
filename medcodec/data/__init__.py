"""Real training and evaluation images: catalog, fetching and patch sampling."""
