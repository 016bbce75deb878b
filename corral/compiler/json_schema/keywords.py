"""The JSON Schema keyword table: which keywords corral knows, grouped by what they constrain.

The compiler's unknown-keyword check (:class:`~corral.compiler.json_schema.compiler._Compiler`)
reads :data:`KNOWN`; the expansions dispatch on the groups. A keyword in none of these groups is
unknown: ignored, as the specification says, and reported as a warning.
"""

from __future__ import annotations

# keywords that never constrain the value (identifiers, definitions, metadata)
ANNOTATIONS = {
    "$schema", "$id", "$anchor", "$dynamicAnchor", "$comment", "$defs", "definitions", "$vocabulary",
    "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly",
    "contentMediaType", "contentEncoding", "contentSchema", "$recursiveAnchor",
    "id",  # draft-04's $id (read as an annotation)
}

# the values of "type" besides "integer"
TYPES = ("null", "boolean", "object", "array", "number", "string")

# keywords whose meaning corral knows, by the kind of value they constrain (OTHER_KW: any kind);
# anything else that is not an annotation is ignored, as the spec says for unknown keywords (and
# reported as a warning)
STRING_KW = {"minLength", "maxLength", "pattern", "format"}

NUMBER_KW = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}

OBJECT_KW = {"properties", "required", "additionalProperties", "patternProperties", "propertyNames",
             "minProperties", "maxProperties", "dependentRequired", "dependentSchemas", "dependencies",
             "unevaluatedProperties"}

ARRAY_KW = {"items", "prefixItems", "additionalItems", "minItems", "maxItems", "contains", "minContains",
            "maxContains", "uniqueItems", "unevaluatedItems"}

OTHER_KW = {"type", "enum", "const", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref",
            "$dynamicRef", "$recursiveRef"}

KNOWN = ANNOTATIONS | STRING_KW | NUMBER_KW | OBJECT_KW | ARRAY_KW | OTHER_KW

# the formats the specification defines (others are annotations: ignored, with a warning)
SPEC_FORMATS = {"date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname", "ipv4",
                "ipv6", "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template", "json-pointer",
                "relative-json-pointer", "regex"}

MAX_COUNTED_ITEMS = 2000  # minItems/maxItems/minContains/maxContains above this are unsupported

MAX_COUNTED_PROPERTIES = 64  # likewise minProperties/maxProperties

# where subschemas are (only these are searched for $id and anchors: an $id inside an unknown
# keyword is not an identifier)
_SUBSCHEMA = {"additionalProperties", "additionalItems", "contains", "propertyNames", "not", "if", "then", "else",
              "unevaluatedProperties", "unevaluatedItems"}

_SUBSCHEMA_LISTS = {"allOf", "anyOf", "oneOf", "prefixItems"}

_SUBSCHEMA_MAPS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"}
