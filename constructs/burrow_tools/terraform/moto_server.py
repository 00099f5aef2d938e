"""moto's server, made faithful to AWS where a Burrow stack would otherwise wait on it forever.

Each entry of `FIXES` names what moto does differently from AWS and is applied before the server
starts. Unlike `EMULATOR_GAPS` (which change what is rehearsed), a fix changes only the emulator:
the stacks are applied exactly as synthesized.

Usage: python -m burrow_tools.terraform.moto_server -H 127.0.0.1 -p <port>
"""

from __future__ import annotations

import copy
import json
import sys

FIXES = (
    "kms ReplicateKey: moto drops the request's Tags (AWS puts them on the replica), so the provider "
    "would wait 10 minutes for tags that never come",
    "kms ReplicateKey: moto's replica shares its multi-Region configuration with the primary, so the "
    "first DescribeKey of the replica turns the primary into a REPLICA too and every later plan fails",
    "kms ReplicateKey: moto gives the replica the primary's description instead of the request's",
    "secretsmanager replicas: moto ignores each replica region's KmsKeyId and answers "
    "alias/aws/secretsmanager, so a replica under a customer-managed key never stops changing",
)


def _replicate_key_as_requested() -> None:
    from moto.kms import models, responses

    replicate = responses.KmsResponse.replicate_key

    def replicate_key(self) -> str:
        body = replicate(self)
        region = self._get_param("ReplicaRegion")
        replica = json.loads(body)["ReplicaKeyMetadata"]
        backend = models.kms_backends[self.current_account][region]
        description = self._get_param("Description")
        if description is not None:
            backend.keys[replica["KeyId"]].description = description
            body = json.dumps({**json.loads(body), "ReplicaKeyMetadata": {**replica, "Description": description}})
        tags = self._get_param("Tags")
        if tags:
            backend.tag_resource(replica["KeyId"], tags)
        return body

    responses.KmsResponse.replicate_key = replicate_key


def _replica_with_its_own_configuration() -> None:
    from moto.kms import models

    replicate = models.KmsBackend.replicate_key

    def replicate_key(self, key_id: str, replica_region: str):
        replica = replicate(self, key_id, replica_region)
        primary = self.keys[key_id]
        configuration = copy.deepcopy(primary.multi_region_configuration)
        primary.multi_region_configuration = {**configuration, "MultiRegionKeyType": "PRIMARY"}
        replica.multi_region_configuration = {**copy.deepcopy(configuration), "MultiRegionKeyType": "REPLICA"}
        return replica

    models.KmsBackend.replicate_key = replicate_key


def _secret_replicas_keep_their_key() -> None:
    from moto.secretsmanager import models

    create_replicas = models.FakeSecret.create_replicas

    def create_replicas_with_keys(self, replica_regions, force_overwrite):
        replicas = create_replicas(self, replica_regions, force_overwrite)
        keys = {config["Region"]: config.get("KmsKeyId") for config in replica_regions or []}
        for replica in replicas:
            if keys.get(replica.region):
                replica.config["KmsKeyId"] = keys[replica.region]
        return replicas

    models.FakeSecret.create_replicas = create_replicas_with_keys


def main(argv: list[str]) -> None:
    _replicate_key_as_requested()
    _replica_with_its_own_configuration()
    _secret_replicas_keep_their_key()
    from moto.server import main as serve

    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
