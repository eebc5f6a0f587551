"""Sharing between partners: who is calling (principals), what each may see (releasability
labels and views), redaction, the audit chain, federation of nodes and track-to-track fusion."""
