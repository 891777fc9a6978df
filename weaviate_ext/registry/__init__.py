"""Plugins as OCI artifacts: push, pull, search, signatures and the host's registry policy.

The parts, each in its own module (docs/registry.md tells the whole story):

* :mod:`~weaviate_ext.registry.reference` -- ``oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX]``;
* :mod:`~weaviate_ext.registry.artifact` -- a plugin directory as an OCI artifact (media
  types, annotations, reproducible digests) and the checks of a pulled one;
* :mod:`~weaviate_ext.registry.client` -- the OCI distribution API over ``httpx``;
* :mod:`~weaviate_ext.registry.credentials` -- credentials from auth.json files and env;
* :mod:`~weaviate_ext.registry.cache` -- the content-addressed, locked, bounded cache;
* :mod:`~weaviate_ext.registry.push` / :mod:`~weaviate_ext.registry.pull` -- push and
  sign; resolve, check the policy, download, verify and unpack;
* :mod:`~weaviate_ext.registry.settings` -- the ``_registry`` section of a host config;
* :mod:`~weaviate_ext.registry.signing` / :mod:`~weaviate_ext.registry.policy` -- cosign
  signatures and the host's policy (which keys are trusted where; digest pins).

Nothing is imported here, so ``import weaviate_ext`` does not load ``httpx``.
"""
