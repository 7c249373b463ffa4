"""The dashboard: static pages served at ``/`` that read only the public pipes with the user's token."""
