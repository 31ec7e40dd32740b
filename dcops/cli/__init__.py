"""The operator CLI: thin click commands that call the library and render results."""
