"""Tests of derive.py on a small synthetic SDK (no network, no wheel download).

    python3 -m unittest discover -s openapi/upstream

The real releases are covered by tests/suite/drift.rs through the checked-in derived files; this
pins down the reading rules and the YAML emitter on cases those releases may not show.
"""

import io
import json
import unittest
import zipfile
from pathlib import Path
from tempfile import TemporaryDirectory

import derive

API = '''
class AccountApi(object):
    def remove_members_with_http_info(self, group_id, ids, **kwargs):  # noqa: E501
        """Remove members  # noqa: E501

        Only the creator may.  # noqa: E501

        :param int group_id: Group id (required)
        :param list[int] ids: Member ids: several allowed (required)
        :param str x_gate_exptime: Deadline
        :param dict(str, str) tags: Free tags
        """
        path_params = {}
        if 'group_id' in local_var_params:
            path_params['group_id'] = local_var_params['group_id']
        query_params = []
        if 'tags' in local_var_params:
            query_params.append(('tags', local_var_params['tags']))
        header_params = {}
        if 'x_gate_exptime' in local_var_params:
            header_params['x-gate-exptime'] = local_var_params['x_gate_exptime']
        body_params = None
        if 'ids' in local_var_params:
            body_params = local_var_params['ids']
        header_params['Accept'] = self.api_client.select_header_accept(['application/json'])
        header_params['Content-Type'] = self.api_client.select_header_content_type(
            ['application/json'])
        auth_settings = ['apiv4']
        return self.api_client.call_api(
            '/account/stp_groups/{group_id}/members', 'DELETE', path_params, query_params,
            header_params, body=body_params, response_type='list[Member]',
            auth_settings=auth_settings)

    def unrelated_with_http_info(self, **kwargs):
        """Not covered: never read in full, so its oddities do not matter."""
        form_params.append(('x', local_var_params['y']))
        return self.api_client.call_api('/wallet/odd', 'POST', response_type=None)
'''

MODELS_INIT = '''
from gate_api.models.member import Member
from gate_api.models.badge import Badge
'''

MEMBER = '''
class Member(object):
    openapi_types = {'user_id': 'int', 'since': 'datetime', 'badge': 'Badge'}
    attribute_map = {'user_id': 'uid', 'since': 'since', 'badge': 'badge'}

    @property
    def user_id(self):
        """Gets the user_id of this Member.  # noqa: E501

        The member  # noqa: E501

        :return: The user_id of this Member.  # noqa: E501
        """
        return self._user_id

    @user_id.setter
    def user_id(self, user_id):
        if self.local_vars_configuration.client_side_validation and user_id is None:  # noqa: E501
            raise ValueError("Invalid value for `user_id`, must not be `None`")  # noqa: E501
        self._user_id = user_id
'''

BADGE = '''
class Badge(object):
    openapi_types = {'on': 'bool'}
    attribute_map = {'on': 'on'}
'''


def synthetic_sources():
    return {
        "gate_api/api/account_api.py": API,
        "gate_api/models/__init__.py": MODELS_INIT,
        "gate_api/models/member.py": MEMBER,
        "gate_api/models/badge.py": BADGE,
    }


class DeriveTest(unittest.TestCase):
    def setUp(self):
        self.fragment = derive.derive(synthetic_sources())

    def test_operation_facts(self):
        operation = self.fragment["paths"]["/account/stp_groups/{group_id}/members"]["delete"]
        self.assertEqual(operation["operationId"], "removeMembers")
        self.assertEqual(operation["x-sdk-method"], "remove_members")
        self.assertEqual(operation["summary"], "Remove members")
        self.assertEqual(operation["description"], "Only the creator may.")
        self.assertEqual(operation["security"], [{"apiv4": []}])
        params = {(p["in"], p["name"]): p for p in operation["parameters"]}
        self.assertEqual(set(params), {("path", "group_id"), ("query", "tags"),
                                       ("header", "x-gate-exptime")})
        self.assertTrue(params[("path", "group_id")]["required"])
        self.assertFalse(params[("header", "x-gate-exptime")]["required"])
        self.assertEqual(params[("query", "tags")]["schema"],
                         {"type": "object", "additionalProperties": {"type": "string"}})
        body = operation["requestBody"]
        self.assertTrue(body["required"])
        self.assertEqual(body["content"]["application/json"]["schema"],
                         {"type": "array", "items": {"type": "integer"},
                          "description": "Member ids: several allowed"})
        response = operation["responses"]["200"]["content"]["application/json"]["schema"]
        self.assertEqual(response["items"], {"$ref": "#/components/schemas/Member"})
        self.assertNotIn("/wallet/odd", self.fragment["paths"])

    def test_models_follow_references_and_wire_names(self):
        schemas = self.fragment["components"]["schemas"]
        self.assertEqual(sorted(schemas), ["Badge", "Member"])
        member = schemas["Member"]
        self.assertEqual(member["required"], ["uid"])
        self.assertEqual(list(member["properties"]), ["uid", "since", "badge"])
        self.assertEqual(member["properties"]["uid"]["description"], "The member")
        self.assertEqual(member["properties"]["since"]["format"], "date-time")

    def test_yaml_is_deterministic_and_quotes_what_yaml_would_misread(self):
        first = derive.render(self.fragment, "1.2.3", "gate_api-1.2.3-py3-none-any.whl", "00")
        second = derive.render(derive.derive(synthetic_sources()), "1.2.3",
                               "gate_api-1.2.3-py3-none-any.whl", "00")
        self.assertEqual(first, second)
        self.assertIn('\n        "200":\n', first)
        self.assertIn('\n  "/account/stp_groups/{group_id}/members":\n', first)
        self.assertIn('\n        "on":\n', first)  # a YAML 1.1 boolean as a plain key
        self.assertIn('\n  version: "1.2.3"\n', first)

    def test_strings_are_json_escaped(self):
        out = io.StringIO()
        derive.emit({"text": 'a "quote"\n\u7528'}, 0, out)
        line = out.getvalue()
        self.assertEqual(json.loads(line.split(": ", 1)[1]), 'a "quote"\n\u7528')

    def test_a_wheel_round_trip(self):
        with TemporaryDirectory() as scratch:
            wheel = Path(scratch) / "gate_api-1.2.3-py3-none-any.whl"
            with zipfile.ZipFile(wheel, "w") as archive:
                for name, text in synthetic_sources().items():
                    archive.writestr(name, text)
            out = Path(scratch) / "out.yaml"
            derive.derive_wheel(wheel, out)
            text = out.read_text(encoding="utf-8")
            self.assertTrue(text.startswith("# Derived from the official Python SDK gate-api 1.2.3\n"))
            derive.derive_wheel(wheel, out)
            self.assertEqual(out.read_text(encoding="utf-8"), text)

    def test_no_stp_operation_is_an_error(self):
        sources = synthetic_sources()
        sources["gate_api/api/account_api.py"] = API.replace("/account/stp_groups", "/elsewhere")
        with self.assertRaises(derive.DeriveError):
            derive.derive(sources)


if __name__ == "__main__":
    unittest.main()
