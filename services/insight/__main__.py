from services.insight.app import SPEC, create_app
from shared.service import serve

serve(SPEC, create_app)
