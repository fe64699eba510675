"""Privacy by construction, and the means to prove it: the leak audit
(:mod:`edge.privacy.audit`), the audit log of privacy settings and debug modes
(:mod:`edge.privacy.store`, :mod:`edge.privacy.settings`)."""
