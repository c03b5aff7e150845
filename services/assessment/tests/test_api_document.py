"""Assessment's OpenAPI document declares what its validation refuses (issue 23): a criterion's
name is a key whose pattern the document states for every key, not only as patternProperties
(which left any other key schema-valid and refused: the fuzzer's 'schema-valid request rejected')."""

import jsonschema

from assessment.app import app


def test_criteria_names_are_declared_for_every_key():
    schemas = app.openapi()["components"]["schemas"]
    scores = schemas["ScoreSheet"]["properties"]["scores"]
    criteria = schemas["RuleSetChange"]["properties"]["criteria"]["anyOf"][0]
    for schema in (scores, criteria):
        assert not jsonschema.Draft202012Validator(schema).is_valid({"&odd": 1})
        assert not jsonschema.Draft202012Validator(schema).is_valid({"a.b": 1})
        assert jsonschema.Draft202012Validator(schema).is_valid({"relevance": 5})
