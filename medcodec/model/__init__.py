"""The learned recurrent residual codec: config, layers, networks and the pure core."""
