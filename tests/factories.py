"""factory_boy factories shared by the test suite."""
import factory
from django.utils import timezone


class UserFactory(factory.django.DjangoModelFactory):
    """A verified, unlocked trader; pass email_verified_at=None or locked_at=... for the other cases."""

    class Meta:
        model = "accounts.User"
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@brokerx.example")
    password = factory.PostGenerationMethodCall("set_password", "x-Test-pass-1")
    email_verified_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save(update_fields=["password"])
