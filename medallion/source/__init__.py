"""The source side: the embedded PostgreSQL cluster and the Pagila sample database."""
